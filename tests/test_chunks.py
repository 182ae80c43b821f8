"""Time-parallel chunks: planning, exactness of stitching, local/Dask runners, retries, batch parts.

The scene: a sphere hit four times (a pulse train of Gaussian-derivative pulses). By linearity the
chunks' outputs, placed at their start steps and summed, equal the whole run except for the sound a
chunk leaves in the box when it stops (energy below 1e-6 of its peak) — measured here at about
1e-4 relative L2 (h = 1 cm, float64); the acceptance bound is 1e-3.
"""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
from exact import rel_l2

import wavesolve
from wavesolve.chunks import plan_chunks, run_chunk, stitch
from wavesolve.errors import ChunkError
from wavesolve.result import ChunkPart
from wavesolve.shading import Shader, shader_class

SCENE = """
[simulation]
duration = 0.02
cell_size = 0.01
precision = "float64"
[domain]
size = 0.16
absorbing_layer = 8
[[objects]]
name = "ball"
mesh = { primitive = "icosphere", radius = 0.04, subdivisions = 2 }
[[objects.shaders]]
type = "prescribed"
pattern = "pulsate"
signal = { waveform = "pulse_train", times = [0.0, 0.005, 0.0105, 0.016], gains = [1.0, -0.6, 0.8, 0.5], pulse = { waveform = "gaussian_derivative", frequency = 1500.0, amplitude = 100.0 } }
[[listeners]]
name = "a"
position = [0.06, 0.0, 0.0]
[[listeners]]
name = "b"
position = [0.0, -0.04, 0.05]
"""

BOUND = 1e-3  # the acceptance bound, relative L2 of --chunks 4 against --chunks 1

needs_intervals = pytest.mark.skipif(
    shader_class("prescribed").active_intervals is Shader.active_intervals,
    reason="the installed wavesolve_shaders predates PrescribedShader.active_intervals")


@pytest.fixture(scope="module")
def scene_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("chunks") / "impacts.toml"
    path.write_text(SCENE)
    return path


@pytest.fixture(scope="module")
def whole(scene_path):
    return wavesolve.simulate(wavesolve.load_scene(scene_path), progress=False)


@pytest.fixture(scope="module")
def four(scene_path):
    return wavesolve.simulate(wavesolve.load_scene(scene_path), progress=False, chunks=4)


def _close(result, reference, bound):
    for name in reference.names:
        assert rel_l2(result.listener(name), reference.listener(name)) < bound, name


def test_uniform_plan_partitions_the_steps(scene_path):
    scene = wavesolve.load_scene(scene_path)
    plan = plan_chunks(scene, 4)
    total = scene.grid.steps_for(scene.duration)
    windows = [plan.window(k) for k in range(4)]
    assert windows[0][0] == 0 and windows[-1][1] == total
    assert all(a[1] == b[0] for a, b in zip(windows, windows[1:]))
    with pytest.raises(ChunkError, match="positive integer or 'auto'"):
        plan_chunks(scene, 0)


@needs_intervals
def test_adaptive_plan_cuts_at_silent_gaps(scene_path):
    scene = wavesolve.load_scene(scene_path)
    plan = plan_chunks(scene, "auto")
    dt = scene.grid.dt
    assert plan.n_chunks == 4
    spans = scene.objects[0].shaders[0].active_intervals(0.0, scene.duration)
    for k in range(1, 4):  # each cut lies in the gap before pulse k
        assert spans[k - 1][1] < plan.starts[k] * dt <= spans[k][0]


def test_four_chunks_equal_one(whole, four):
    """--chunks 4 vs --chunks 1: relative L2 < 1e-3 (measured ≈ 1e-4: the tails cut at 1e-6 energy)."""
    _close(four, whole, BOUND)
    assert four.metadata["chunks"] == 4


def test_chunk_stops_when_its_sound_has_left(scene_path):
    scene = wavesolve.load_scene(scene_path)
    plan = plan_chunks(scene, 4)
    out = run_chunk(scene, plan, 0)
    assert out.stop == "quiet"
    assert out.data.shape[2] < plan.total_steps - 1  # stopped well before the end of the scene
    assert out.data.shape[2] >= plan.window(0)[1]


def test_dask_local_cluster_equals_serial(scene_path, whole, tmp_path):
    distributed = pytest.importorskip("distributed")
    from wavesolve.runners import run_chunks

    scene = wavesolve.load_scene(scene_path)
    plan = plan_chunks(scene, "auto")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        parts, report = run_chunks(scene, plan, tmp_path / "parts", scheduler=cluster.scheduler_address)
    assert sorted(report.computed) == list(range(plan.n_chunks))
    from wavesolve.api import make_result
    from wavesolve.chunks import ChunkOutput

    raw = stitch(plan, [ChunkOutput(p.chunk, p.start_step, p.probes) for p in parts])
    _close(make_result(scene, raw, {}), whole, BOUND)


def test_dask_workers_with_several_threads_are_refused(scene_path, tmp_path):
    """Two chunks at once in one worker process would run the compiled kernels concurrently
    (Numba's workqueue layer aborts on that): the run stops before submitting, saying how to fix."""
    distributed = pytest.importorskip("distributed")
    from wavesolve.runners import run_chunks

    scene = wavesolve.load_scene(scene_path)
    plan = plan_chunks(scene, 2)
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=True,
                                  dashboard_address=None) as cluster:
        with pytest.raises(ChunkError, match="--nthreads 1"):
            run_chunks(scene, plan, tmp_path / "parts", scheduler=cluster.scheduler_address)
    assert not (tmp_path / "parts").exists() or not any((tmp_path / "parts").iterdir())


def _cli(*args, env_extra=None, cwd=None):
    env = dict(os.environ, **(env_extra or {}))
    return subprocess.run([sys.executable, "-m", "wavesolve.cli", *map(str, args)], capture_output=True,
                          text=True, timeout=600, env=env, cwd=cwd)


def test_killed_worker_is_retried_and_result_unchanged(scene_path, four, tmp_path):
    """Chunk 1's first worker calls os._exit mid-chunk; the run retries it, says so, and gives the
    same result as the in-process chunked run (bit for bit up to 1e-12). A rerun skips every part."""
    out = tmp_path / "r.h5"
    proc = _cli("run", scene_path, "-o", out, "--wav", tmp_path / "r.wav", "--chunks", "4", "--workers", "2",
                "--no-progress", "--keep-parts", env_extra={"WAVESOLVE_TEST_CRASH_CHUNK": "1"})
    assert proc.returncode == 0, proc.stderr
    assert "retried chunk 1" in proc.stderr and "status 17" in proc.stderr
    result = wavesolve.Result.load(out)
    assert result.metadata["retried_chunks"] == "1"
    _close(result, four, 1e-12)
    again = _cli("run", scene_path, "-o", out, "--wav", tmp_path / "r.wav", "--chunks", "4", "--workers", "2",
                 "--no-progress")
    assert again.returncode == 0, again.stderr
    assert "skipped chunk(s) 0, 1, 2, 3" in again.stderr
    _close(wavesolve.Result.load(out), four, 1e-12)
    assert not (tmp_path / "r.h5.parts").exists()  # removed once the result is written (no --keep-parts)


@pytest.fixture(scope="module")
def batch(scene_path, tmp_path_factory):
    """run-chunk K --of 2 for K = 0, 1, then stitch."""
    d = tmp_path_factory.mktemp("batch")
    for k in range(2):
        proc = _cli("run-chunk", scene_path, "--chunk", k, "--of", 2, "-o", d / f"part-{k}.h5", "--no-progress")
        assert proc.returncode == 0, proc.stderr
    return d


def test_run_chunk_and_stitch_equal_the_direct_run(batch, whole):
    proc = _cli("stitch", batch / "part-0.h5", batch / "part-1.h5", "-o", batch / "out.h5", "--wav",
                batch / "out.wav")
    assert proc.returncode == 0, proc.stderr
    _close(wavesolve.Result.load(batch / "out.h5"), whole, BOUND)
    assert (batch / "out.wav").is_file()


def test_stitch_refuses_a_missing_part(batch, tmp_path):
    proc = _cli("stitch", batch / "part-0.h5", "-o", tmp_path / "out.h5")
    assert proc.returncode == 2
    assert "chunk(s) 1 of 2 missing" in proc.stderr and "run-chunk" in proc.stderr
    assert not (tmp_path / "out.h5").exists()


def test_stitch_refuses_parts_of_another_scene_or_plan(batch, tmp_path):
    part = ChunkPart.load(batch / "part-1.h5")
    part.scene_text = part.scene_text.replace("amplitude = 100.0", "amplitude = 50.0")
    part.key = "another"
    part.save(tmp_path / "other-scene.h5")
    proc = _cli("stitch", batch / "part-0.h5", tmp_path / "other-scene.h5", "-o", tmp_path / "out.h5")
    assert proc.returncode == 2 and "belongs to a different scene" in proc.stderr

    part = ChunkPart.load(batch / "part-1.h5")
    part.plan = part.plan.replace('"mode": "uniform"', '"mode": "adaptive"')
    part.key = "another plan"
    part.save(tmp_path / "other-plan.h5")
    proc = _cli("stitch", batch / "part-0.h5", tmp_path / "other-plan.h5", "-o", tmp_path / "out.h5")
    assert proc.returncode == 2 and "different chunk plan" in proc.stderr

    (tmp_path / "junk.h5").write_bytes(b"not hdf5")
    proc = _cli("stitch", batch / "part-0.h5", tmp_path / "junk.h5", "-o", tmp_path / "out.h5")
    assert proc.returncode == 2 and "junk.h5" in proc.stderr
    assert not (tmp_path / "out.h5").exists()


def test_run_chunk_out_of_range(scene_path, tmp_path):
    proc = _cli("run-chunk", scene_path, "--chunk", 5, "--of", 2, "-o", tmp_path / "p.h5")
    assert proc.returncode == 2 and "out of range" in proc.stderr
